package aws

import (
	"reflect"
	"testing"

	"github.com/meshd-io/meshd/internal/model"
)

// TestMergeKeepsEveryObservedMap: every map field of model.Observed that one region fills reaches the
// merged observation, including fields added after merge was written (it once dropped EKSAutoMode).
func TestMergeKeepsEveryObservedMap(t *testing.T) {
	src := &model.Observed{}
	sv := reflect.ValueOf(src).Elem()
	for i := 0; i < sv.NumField(); i++ {
		f := sv.Field(i)
		if f.Kind() != reflect.Map {
			continue
		}
		m := reflect.MakeMap(f.Type())
		key := reflect.New(f.Type().Key()).Elem()
		if key.Kind() == reflect.String {
			key.SetString("k")
		}
		m.SetMapIndex(key, reflect.New(f.Type().Elem()).Elem())
		f.Set(m)
	}
	src.Peerings = map[string]model.ObservedPeering{"pcx-1": {ID: "pcx-1"}}
	dst := model.NewObserved()
	merge(dst, src)
	dv := reflect.ValueOf(dst).Elem()
	for i := 0; i < dv.NumField(); i++ {
		if f := dv.Field(i); f.Kind() == reflect.Map && f.Len() == 0 {
			t.Errorf("merge dropped Observed.%s", dv.Type().Field(i).Name)
		}
	}
}
