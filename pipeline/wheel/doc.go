// Package wheel is the durable timing wheel: timers kept in the store under
// time-ordered keys, the earliest held in memory, each fired once at its due
// time (overdue ones after a restart) to the handler registered for its
// kind. The engine and the report schedule their work on it.
package wheel
