//go:build race

package e2e

// raceEnabled: the tests run with -race (see raceDaemon).
const raceEnabled = true
