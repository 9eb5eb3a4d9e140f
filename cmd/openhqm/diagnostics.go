package main

import "fmt"

// textSummary is the last line of validate's text output.
func textSummary(errs, warns int, strict bool) string {
	switch {
	case errs == 0 && warns == 0:
		return "Success! The configuration is valid.\n"
	case errs == 0 && strict:
		return fmt.Sprintf("The configuration is invalid under --strict: %s.\n", plural(warns, "warning"))
	case errs == 0:
		return fmt.Sprintf("Success! The configuration is valid, with %s.\n", plural(warns, "warning"))
	default:
		return fmt.Sprintf("The configuration is invalid: %s, %s.\n", plural(errs, "error"), plural(warns, "warning"))
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
