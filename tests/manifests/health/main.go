// Command health reads a Kubernetes List (JSON, as `kubectl get -o json` prints it) on stdin and
// prints one line per object: its kind and name, kstatus's status and message, and, with
// -lua SCRIPT, what that Argo CD health script answers for it (status and message).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	script := flag.String("lua", "", "an Argo CD health.lua to evaluate on each object")
	flag.Parse()
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	// decoded as kubectl and the controllers decode: integers as int64, which kstatus expects
	var list unstructured.UnstructuredList
	if err := list.UnmarshalJSON(data); err != nil {
		fail("reading the List on stdin: %v", err)
	}
	for i := range list.Items {
		obj := &list.Items[i]
		res, err := status.Compute(obj)
		if err != nil {
			fail("kstatus of %s/%s: %v", obj.GetKind(), obj.GetName(), err)
		}
		line := fmt.Sprintf("%s/%s kstatus=%s %q", obj.GetKind(), obj.GetName(), res.Status, res.Message)
		if *script != "" {
			health, message := argoHealth(*script, obj.Object)
			line += fmt.Sprintf(" argocd=%s %q", health, message)
		}
		fmt.Println(line)
	}
}

// argoHealth runs the script as Argo CD does: the object as the global `obj`, the script's
// returned table read for `status` and `message`.
func argoHealth(script string, obj map[string]any) (string, string) {
	L := lua.NewState(lua.Options{SkipOpenLibs: false})
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoFile(script); err != nil {
		fail("%s: %v", script, err)
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		fail("%s returned %s, not a table", script, L.Get(-1).Type())
	}
	return lua.LVAsString(hs.RawGetString("status")), lua.LVAsString(hs.RawGetString("message"))
}

// toLua converts decoded JSON the way Argo CD hands objects to its scripts: objects and
// arrays become tables (arrays 1-based), JSON null becomes nil.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range v {
			t.Append(toLua(L, e))
		}
		return t
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case bool:
		return lua.LBool(v)
	default:
		return lua.LNil
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "health: "+format+"\n", args...)
	os.Exit(1)
}
