package arm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is an ARM error: it travels as {"error":{"code","message","target"}}.
// Status is the HTTP status the API answers with; it is not part of the body.
type Error struct {
	Status  int      `json:"-"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Target  string   `json:"target,omitempty"`
	Details []*Error `json:"details,omitempty"`
}

func (e *Error) Error() string {
	if e.Target != "" {
		return fmt.Sprintf("%s: %s (target: %s)", e.Code, e.Message, e.Target)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Body is the JSON envelope of an error response.
type Body struct {
	Error *Error `json:"error"`
}

// Errorf builds an ARM error with an HTTP status.
func Errorf(status int, code, target, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Target: target, Message: fmt.Sprintf(format, args...)}
}

// Common constructors with Azure's codes.

// BadRequest is an InvalidParameter error on target.
func BadRequest(target, format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "InvalidParameter", target, format, args...)
}

// NotFound is a ResourceNotFound error for the resource id.
func NotFound(id string) *Error {
	return Errorf(http.StatusNotFound, "ResourceNotFound", id, "The Resource '%s' was not found.", id)
}

// Conflict is a Conflict error.
func Conflict(target, format string, args ...any) *Error {
	return Errorf(http.StatusConflict, "Conflict", target, format, args...)
}

// AsError finds an *Error in err's chain; other errors become InternalServerError.
func AsError(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		if ae.Status == 0 {
			c := *ae
			c.Status = http.StatusBadRequest
			return &c
		}
		return ae
	}
	return &Error{Status: http.StatusInternalServerError, Code: "InternalServerError", Message: err.Error()}
}

// DecodeError reads an ARM error body; it returns nil when data holds none.
func DecodeError(status int, data []byte) *Error {
	var b Body
	if err := json.Unmarshal(data, &b); err != nil || b.Error == nil || b.Error.Code == "" {
		return nil
	}
	b.Error.Status = status
	return b.Error
}
