//go:build race

package service_test

// raceEnabled says the race detector is on: it slows a CPU-bound test
// tenfold, so such a test does a tenth of the work.
const raceEnabled = true
