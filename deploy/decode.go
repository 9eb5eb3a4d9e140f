package deploy

import (
	"errors"
	"fmt"

	kjson "sigs.k8s.io/json"
)

// StrictJSON decodes js into v the way the API server's strict field validation
// does: field names match case-sensitively, and unknown or duplicate fields are
// errors.
func StrictJSON(js []byte, v any) error {
	strict, err := kjson.UnmarshalStrict(js, v, kjson.DisallowUnknownFields)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("strict decoding: %w", errors.Join(strict...))
	}
	return nil
}
