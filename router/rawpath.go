package router

// Routes are matched on fasthttp's decoded and normalized path, while the app
// receives the path exactly as the client wrote it. The two must mean the same
// thing, or a request could match one route (and pass its client_auth and
// rate_limit) while the app serves another path: /public/..%2Fadmin matches
// a /public prefix, yet an app that splits raw segments sees ../admin. Like
// Envoy's path_with_escaped_slashes_action = REJECT_REQUEST, openhqm refuses
// such paths with 400 instead of guessing which meaning the app takes.

// ambiguousPath reports whether the path of a request-target (origin or
// absolute form, query excluded) holds an encoded slash or backslash, an
// encoded dot, a raw backslash, or a dot segment ("." or ".."). It does not
// allocate.
func ambiguousPath(uri []byte) bool {
	// Absolute form: skip "scheme://authority".
	if i := indexScheme(uri); i > 0 {
		uri = uri[i:]
		j := 0
		for j < len(uri) && uri[j] != '/' && uri[j] != '?' {
			j++
		}
		uri = uri[j:]
	}
	segStart := 0
	for i := 0; i <= len(uri); i++ {
		if i == len(uri) || uri[i] == '?' || uri[i] == '#' || uri[i] == '/' {
			seg := uri[segStart:i]
			if (len(seg) == 1 && seg[0] == '.') || (len(seg) == 2 && seg[0] == '.' && seg[1] == '.') {
				return true
			}
			if i == len(uri) || uri[i] != '/' {
				return false
			}
			segStart = i + 1
			continue
		}
		switch uri[i] {
		case '\\':
			return true
		case '%':
			if i+2 < len(uri) {
				h, l := uri[i+1], uri[i+2]|0x20 // lower-case the second digit
				if (h == '2' && (l == 'f' || l == 'e')) || (h == '5' && l == 'c') {
					return true
				}
			}
		}
	}
	return false
}

// indexScheme returns the length of a leading "http://" or "https://"
// (case-insensitive), or 0.
func indexScheme(uri []byte) int {
	for _, s := range [...]string{"http://", "https://"} {
		if len(uri) >= len(s) && equalFoldASCII(uri[:len(s)], s) { // s is lower case
			return len(s)
		}
	}
	return 0
}
