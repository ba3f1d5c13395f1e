package api

import (
	"os/exec"
	"testing"
)

// A run command's parameters reach the script as $1, $2, ... in order,
// quotes and all, as `az vm run-command invoke --scripts 'echo $1 $2'
// --parameters hello world` expects.
func TestRunCommandScriptParameters(t *testing.T) {
	script := runCommandScript([]string{`printf '%s|' "$#" "$1" "$2" "$3"`}, []runCommandParam{
		{Name: "arg1", Value: "hello"}, {Name: "arg2", Value: "it's a $HOME"}, {Name: "x", Value: ""},
	})
	out, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, script)
	}
	if want := "3|hello|it's a $HOME||"; string(out) != want {
		t.Errorf("got %q, want %q\nscript:\n%s", out, want, script)
	}
	// Without parameters the script is the lines, unchanged.
	if got := runCommandScript([]string{"a", "b"}, nil); got != "a\nb" {
		t.Errorf("without parameters: %q", got)
	}
}
