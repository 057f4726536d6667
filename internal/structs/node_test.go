package structs

import "testing"

func TestNodeHasDriver(t *testing.T) {
	tests := []struct {
		name  string
		attrs map[string]string
		drv   string
		want  bool
	}{
		{"advertised", map[string]string{"driver.docker": "true"}, "docker", true},
		{"advertised as 1", map[string]string{"driver.mock": "1"}, "mock", true},
		{"advertised off", map[string]string{"driver.docker": "false", "driver.exec": "true"}, "docker", false},
		{"zero", map[string]string{"driver.docker": "0"}, "docker", false},
		{"other drivers advertised", map[string]string{"driver.exec": "true"}, "docker", false},
		{"other drivers advertised, exec missing", map[string]string{"driver.docker": "true"}, "exec", false},
		{"legacy node runs exec", map[string]string{"os": "linux"}, "exec", true},
		{"legacy node runs mock", nil, "mock", true},
		{"legacy node has no docker", map[string]string{"os": "linux"}, "docker", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &Node{Attributes: tt.attrs}
			if got := n.HasDriver(DriverAttrPrefix + tt.drv); got != tt.want {
				t.Fatalf("HasDriver(%s) = %v, want %v", tt.drv, got, tt.want)
			}
		})
	}
}
