package main

import (
	"slices"
	"strings"
	"testing"
)

func TestBenchRuns(t *testing.T) {
	tests := []struct {
		name    string
		archs   []string
		workers []int
		want    []benchRun
		err     string
	}{
		{"none", nil, nil, nil, ""},
		{"both", []string{"monolithic", "shared-state"}, nil, []benchRun{{"monolithic", 0}, {"shared-state", 0}}, ""},
		{"scaling", []string{"shared-state"}, []int{1, 2, 4, 8}, []benchRun{{"shared-state", 1}, {"shared-state", 2}, {"shared-state", 4}, {"shared-state", 8}}, ""},
		{"workers imply shared-state", nil, []int{2}, []benchRun{{"shared-state", 2}}, ""},
		{"mono and scaling", []string{"monolithic", "shared-state"}, []int{1, 8}, []benchRun{{"monolithic", 0}, {"shared-state", 1}, {"shared-state", 8}}, ""},
		{"all three", []string{"monolithic", "shared-state", "two-level"}, nil, []benchRun{{"monolithic", 0}, {"shared-state", 0}, {"two-level", 0}}, ""},
		{"unknown", []string{"three-level"}, nil, nil, `must be monolithic, shared-state, two-level or peer (got "three-level")`},
		{"workers without shared-state", []string{"monolithic"}, []int{2}, nil, "needs --scheduler shared-state"},
		{"zero workers", []string{"shared-state"}, []int{0}, nil, "must be >= 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := benchRuns(tt.archs, tt.workers)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v %v, want %v", got, err, tt.want)
			}
		})
	}
}

func TestExpandPeerRuns(t *testing.T) {
	runs, err := benchRuns([]string{"monolithic", "peer"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := expandPeerRuns(runs, []int{3, 6, 12})
	want := []benchRun{{arch: "monolithic"}, {arch: "peer", workers: 3}, {arch: "peer", workers: 6}, {arch: "peer", workers: 12}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
