package campaignd

// The settle rule: a message of several parts settles as the worst of its
// parts (SPEC §4), and only a change made from the state it expects is
// applied. The store calls these inside its transactions; they hold the rule,
// the store only the keys.

// Applies reports whether c may be applied to a message whose stored state
// is current: only while it still is c.From, so a stale or repeated change
// never overwrites a newer state.
func (c *Change) Applies(current MessageState) bool { return current == c.From }

// SettleParts returns the state of a message whose parts have the receipt
// states parts: the worst of them, once every part has one. ok is false
// while a part ("") still awaits its receipt.
func SettleParts(parts []MessageState) (state MessageState, ok bool) {
	worst := MessageState("")
	for _, p := range parts {
		if p == "" {
			return "", false
		}
		worst = Worst(worst, p)
	}
	return worst, true
}

// SettleSubmitted returns the state of a submitted message made final with
// to before all its receipts came (a receipt timeout): parts without a
// receipt count as UNKNOWN, and the message is the worst of its parts and to.
func SettleSubmitted(parts []MessageState, to MessageState) MessageState {
	worst := MessageState("")
	for _, p := range parts {
		if p == "" {
			p = StateUnknown
		}
		worst = Worst(worst, p)
	}
	return Worst(worst, to)
}
