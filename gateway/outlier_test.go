package gateway

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/stretchr/testify/require"
)

// Over 80 lines: a table of cases, each a few lines.
func TestOutlierDetector(t *testing.T) {
	type step struct {
		op     string // "fail", "ok", "advance"
		d      time.Duration
		ejects bool          // for "fail": whether it ejects
		want   time.Duration // ejected for this long from now after the step; 0 = admitted
	}
	tests := []struct {
		name     string
		failures int
		steps    []step
		readmits int // onReadmit calls expected
	}{
		{name: "first failure ejects for base", failures: 1, steps: []step{
			{op: "fail", ejects: true, want: time.Second},
			{op: "advance", d: 999 * time.Millisecond, want: time.Millisecond},
			{op: "advance", d: time.Millisecond, want: 0},
		}, readmits: 1},
		{name: "consecutive failures double the ejection up to the cap", failures: 1, steps: []step{
			{op: "fail", ejects: true, want: time.Second},
			{op: "advance", d: time.Second},
			{op: "fail", ejects: true, want: 2 * time.Second},
			{op: "advance", d: 2 * time.Second},
			{op: "fail", ejects: true, want: 4 * time.Second},
			{op: "advance", d: 4 * time.Second},
			{op: "fail", ejects: true, want: 8 * time.Second},
			{op: "advance", d: 8 * time.Second},
			{op: "fail", ejects: true, want: 16 * time.Second},
			{op: "advance", d: 16 * time.Second},
			{op: "fail", ejects: true, want: 30 * time.Second},
			{op: "advance", d: 30 * time.Second},
			{op: "fail", ejects: true, want: 30 * time.Second},
		}, readmits: 6},
		{name: "failures while ejected do not extend it", failures: 1, steps: []step{
			{op: "fail", ejects: true, want: time.Second},
			{op: "advance", d: 500 * time.Millisecond, want: 500 * time.Millisecond},
			{op: "fail", ejects: false, want: 500 * time.Millisecond},
			{op: "fail", ejects: false, want: 500 * time.Millisecond},
			{op: "advance", d: 500 * time.Millisecond, want: 0},
			{op: "fail", ejects: true, want: 2 * time.Second},
		}, readmits: 1},
		{name: "success resets and re-admits at once", failures: 1, steps: []step{
			{op: "fail", ejects: true, want: time.Second},
			{op: "ok", want: 0},
			{op: "advance", d: 5 * time.Second}, // the stopped timer must not fire a second re-admission
			{op: "fail", ejects: true, want: time.Second},
		}, readmits: 1},
		{name: "threshold of three", failures: 3, steps: []step{
			{op: "fail", ejects: false},
			{op: "fail", ejects: false},
			{op: "fail", ejects: true, want: time.Second},
			{op: "advance", d: time.Second},
			{op: "fail", ejects: true, want: 2 * time.Second},
		}, readmits: 1},
		{name: "success between failures keeps the cluster in", failures: 2, steps: []step{
			{op: "fail"},
			{op: "ok"},
			{op: "fail"},
			{op: "ok"},
			{op: "fail"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newEgressFakeClock()
			ejections, readmits := 0, 0
			d := newOutlierDetector(outlierConfig{failures: tc.failures, base: time.Second, max: 30 * time.Second, clock: clock,
				onEject:   func(c string) { require.Equal(t, "west", c); ejections++ },
				onReadmit: func(c string) { require.Equal(t, "west", c); readmits++ }})
			wantEjections := 0
			for i, s := range tc.steps {
				switch s.op {
				case "fail":
					require.Equal(t, s.ejects, d.failure("west"), "step %d", i)
					if s.ejects {
						wantEjections++
					}
				case "ok":
					d.success("west")
				case "advance":
					clock.Advance(s.d)
				}
				until := d.ejectedUntil("west")
				if s.want == 0 {
					require.True(t, until.IsZero(), "step %d: ejected until %s", i, until)
				} else {
					require.Equal(t, clock.Now().Add(s.want), until, "step %d", i)
				}
				require.True(t, d.ejectedUntil("north").IsZero(), "other clusters are not affected")
			}
			require.Equal(t, wantEjections, ejections)
			require.Equal(t, tc.readmits, readmits)
		})
	}
}

func TestOutlierForget(t *testing.T) {
	clock := newEgressFakeClock()
	d := newOutlierDetector(outlierConfig{base: time.Second, max: time.Minute, clock: clock})
	d.failure("east")
	d.failure("west")
	gone := d.forget(func(c string) bool { return c == "east" })
	require.Equal(t, []string{"west"}, gone)
	require.True(t, d.ejectedUntil("west").IsZero())
	require.False(t, d.ejectedUntil("east").IsZero())
	require.Equal(t, 1, d.consecutiveFailures("east"))
	d.close()
}

func TestIsClusterFailure(t *testing.T) {
	ref := func(c causewayv1.StreamCode) error { return &refusal{code: c, msg: "m"} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"dial failure", &dialError{"west", errors.New("timeout")}, true},
		{"every instance draining", &dialError{"west", errAllDraining}, false},
		{"own shutdown", &dialError{"west", context.Canceled}, false},
		{"stream reset before the response", fmt.Errorf("read response of west: %w", errors.New("stream reset")), true},
		{"NO_ENDPOINTS", ref(causewayv1.StreamCode_STREAM_CODE_NO_ENDPOINTS), true},
		{"DIAL_FAILED", ref(causewayv1.StreamCode_STREAM_CODE_DIAL_FAILED), true},
		{"DRAINING", ref(causewayv1.StreamCode_STREAM_CODE_DRAINING), false},
		{"OVERLOADED", ref(causewayv1.StreamCode_STREAM_CODE_OVERLOADED), false},
		{"NOT_EXPORTED", ref(causewayv1.StreamCode_STREAM_CODE_NOT_EXPORTED), false},
		{"FORBIDDEN", ref(causewayv1.StreamCode_STREAM_CODE_FORBIDDEN), false},
		{"BAD_HEADER", ref(causewayv1.StreamCode_STREAM_CODE_BAD_HEADER), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, isClusterFailure(tc.err), "%v", tc.err)
		})
	}
}
