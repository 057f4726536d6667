package twolevel

import (
	"fmt"

	"github.com/gantry-project/gantry/internal/structs"
)

// fieldErrorf names a setting and the rule it breaks.
func fieldErrorf(field, format string, args ...any) error {
	return structs.FieldError{Field: field, Rule: fmt.Sprintf(format, args...)}
}
