//go:build !unix

package connguard

func openFileLimit() (uint64, bool) { return 0, false }
