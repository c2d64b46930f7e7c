// Package push is pushfabric's vocabulary: the words every other package
// shares — dead-letter reasons, priorities, the rule for session, group
// and method names, the time format of push headers, and how a "no
// responders" answer looks. It imports only the standard library, and
// every package of the module may import it; it imports none of them
// (tests/imports_test.go keeps it so).
package push
