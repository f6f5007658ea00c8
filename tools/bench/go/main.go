// Command gobench runs the Go peers of weft's benchmarks.
//
// Usage: gobench [-benchtime 0.5s|10000x] [-tasks N] name...
//
// Each name prints one line "name value": nanoseconds per operation for the
// timed shapes, bytes per parked goroutine for "memory". Timing goes through
// testing.Benchmark, so N is chosen exactly as `go test -bench` chooses it
// and b.RunParallel behaves as it does there. Set GOMAXPROCS to pick the
// number of Ps.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"testing"
)

var benchmarks = map[string]func(*testing.B){
	"pingpong":            benchPingPong,
	"ChanSync":            benchChanSync,
	"ChanProdCons0":       benchChanProdCons0,
	"ChanProdCons100":     benchChanProdCons100,
	"ChanUncontended":     benchChanUncontended,
	"ChanContended":       benchChanContended,
	"SelectUncontended":   benchSelectUncontended,
	"SelectSyncContended": benchSelectSyncContended,
	"ChanSem":             benchChanSem,
	"CreateGoroutines":    benchCreateGoroutines,
}

func main() {
	// testing.Init registers -test.benchtime, which testing.Benchmark reads.
	testing.Init()
	benchtime := flag.String("benchtime", "0.5s", "run time per benchmark (e.g. 0.5s) or iteration count (e.g. 1000x)")
	tasks := flag.Int("tasks", 1000000, "goroutines parked by the memory benchmark")
	list := flag.Bool("list", false, "list the benchmark names and exit")
	flag.Parse()

	if *list {
		names := []string{"memory"}
		for name := range benchmarks {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			fmt.Println(name)
		}
		return
	}
	if err := flag.Set("test.benchtime", *benchtime); err != nil {
		fmt.Fprintf(os.Stderr, "gobench: bad -benchtime %q: %v\n", *benchtime, err)
		os.Exit(2)
	}
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: gobench [-benchtime 0.5s|Nx] [-tasks N] name... (-list for names)")
		os.Exit(2)
	}
	for _, name := range flag.Args() {
		if name == "memory" {
			fmt.Printf("memory %.1f\n", parkedBytesPerGoroutine(*tasks))
			continue
		}
		f, ok := benchmarks[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "gobench: unknown benchmark %q\n", name)
			os.Exit(2)
		}
		r := testing.Benchmark(f)
		if r.N == 0 {
			fmt.Fprintf(os.Stderr, "gobench: %s did not run\n", name)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "%s: N=%d in %v\n", name, r.N, r.T)
		fmt.Printf("%s %.2f\n", name, float64(r.T.Nanoseconds())/float64(r.N))
	}
}
