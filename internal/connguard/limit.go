package connguard

// Bounds of DefaultMaxConns.
const (
	reservedFDs  = 256   // files, queue and result backends, listeners
	minMaxConns  = 64    // even under a tiny open-file limit
	capMaxConns  = 10000 // idle connections cost memory too (a few KiB each)
	unknownLimit = capMaxConns
)

// DefaultMaxConns is the connection bound of server.max_connections = 0:
// (soft RLIMIT_NOFILE - 256) / 2, at least 64 and at most 10000. The 256
// descriptors are kept for files, backends and listeners; the half leaves
// one descriptor for the connection to the app that each client connection
// may hold. The cap bounds the memory idle connections take where the
// open-file limit is huge (Go raises the soft limit to the hard one, often
// 1,048,576 in containers).
func DefaultMaxConns() int {
	n, ok := openFileLimit()
	if !ok {
		return unknownLimit
	}
	return maxConnsFor(n)
}

func maxConnsFor(nofile uint64) int {
	if nofile <= reservedFDs+2*minMaxConns {
		return minMaxConns
	}
	return int(min((nofile-reservedFDs)/2, capMaxConns))
}
