// Package logbackoff decides when a failure that repeats with every retry
// deserves another log line: the first time, then after intervals that
// double up to a cap, so a component retrying every second neither stays
// silent nor fills its log.
//
// Rules:
//   - The first failure after a success (or after a change of kind) is
//     always logged.
//   - Further failures of the same kind are logged at most once per
//     interval; the interval doubles from Min up to Max.
//   - Each logged line can report how many failures it stands for.
package logbackoff
