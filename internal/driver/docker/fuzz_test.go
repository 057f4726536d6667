package docker

import (
	"encoding/json"
	"testing"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

// FuzzConfig: whatever config block the schema accepts (what the server
// lets through at submit time), the driver reads back and turns into a
// container spec without error; nothing panics on any input.
//
//	go test -fuzz FuzzConfig -fuzztime 1m ./internal/driver/docker/
func FuzzConfig(f *testing.F) {
	for _, seed := range []string{
		`{"image":"busybox"}`,
		`{"image":"b","ports":{"8080":"80","127.0.0.1:53":"53/udp","[::1]:9":9}}`,
		`{"image":"b","volumes":["data:/d","./x/../y:/y:ro","/etc:/e:rw"],"network_mode":"container:db"}`,
		`{"image":"b","labels":{"a":1,"b":true},"kill_signal":"hup","kill_timeout":"1s","command":"sh","args":["-c","x"]}`,
		`{"image":"b","ports":{"0":"80"}}`,
		`{"image":"b","volumes":["./..:/x"]}`,
	} {
		f.Add([]byte(seed))
	}
	d := &Driver{opts: Options{NodeID: "n", AllowHostBinds: true}}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var config map[string]any
		if json.Unmarshal(doc, &config) != nil {
			return
		}
		if errs := schema.Validate(config); len(errs) > 0 {
			return
		}
		s, errs := parseSpec(config)
		if len(errs) > 0 {
			t.Fatalf("accepted config not parsed: %v", errs)
		}
		cfg := &driver.TaskConfig{AllocID: "a", Config: config, AllocDir: t.TempDir(),
			Resources: structs.Resources{CPU: 100, MemoryMB: 16}}
		if _, err := d.createOptions(cfg, s); err != nil {
			t.Fatalf("accepted config %s: no container spec: %v", doc, err)
		}
	})
}
