// Package replies handles mobile-originated messages: it keeps every reply,
// suppresses the sender's number when the text is an opt-out keyword
// (MatchKeyword), and sends the confirmation SMS.
package replies
