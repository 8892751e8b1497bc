// loader-get NAME: resolves NAME the way the Go tsuku client's install does, through its recipe
// Loader over the central-registry provider, with the satisfies and alias fallbacks that run
// when the registry has no recipe of that name. The manifest (recipes.json) is fetched first
// and cached, as 'tsuku update-registry' does, because those fallbacks read the cached copy.
// Built by GoExportTests inside a copy of ../shared/peers/go-tsuku-registry (it imports that
// module's internal packages); prints the resolved recipe's metadata.name.
// Exit 3: no recipe; 5: the manifest could not be fetched.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tsukumogami/tsuku/internal/recipe"
	"github.com/tsukumogami/tsuku/internal/registry"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: loader-get NAME")
		os.Exit(64)
	}
	reg := registry.New(filepath.Join(os.Getenv("TSUKU_HOME"), "registry"))
	if _, err := reg.FetchManifest(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "manifest:", err)
		os.Exit(5)
	}
	l := recipe.NewLoader(recipe.NewCentralRegistryProvider(reg))
	name := os.Args[1]
	r, err := l.Get(name, recipe.LoaderOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(3)
	}
	if alias, ok := l.LookupAllSatisfiers(name); ok {
		fmt.Fprintln(os.Stderr, "aliases:", alias)
	}
	fmt.Println(r.Metadata.Name)
}
