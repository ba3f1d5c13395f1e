package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestInstanceLimitFlags: sizes are converted to bytes, -1 lifts a cap,
// 0 is refused.
func TestInstanceLimitFlags(t *testing.T) {
	parse := func(args ...string) (int64, int64, int64, error) {
		var f daemonFlags
		c := &cobra.Command{}
		f.add(c)
		if err := c.Flags().Parse(args); err != nil {
			t.Fatal(err)
		}
		o, err := f.options(&globals{})
		return o.InstancePids, o.InstanceMemory, o.InstancesDisk, err
	}
	if p, m, d, err := parse(); err != nil || p != 1024 || m != 1<<30 || d != 8<<30 {
		t.Errorf("defaults: %d %d %d %v", p, m, d, err)
	}
	if p, m, d, err := parse("--instance-max-processes", "-1", "--instance-memory-mib", "-1", "--instances-disk-gib", "2"); err != nil || p != -1 || m != -1 || d != 2<<30 {
		t.Errorf("no caps: %d %d %d %v", p, m, d, err)
	}
	for _, flag := range []string{"--instance-max-processes", "--instance-memory-mib", "--instances-disk-gib"} {
		if _, _, _, err := parse(flag, "0"); err == nil || !strings.Contains(err.Error(), "-1 for no cap") {
			t.Errorf("%s 0: %v", flag, err)
		}
	}
}
