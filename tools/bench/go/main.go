// Command gobench runs the Go peers of weft's benchmarks.
//
// Usage: gobench [-benchtime 0.5s|10000x] [-tasks N] [-tickertime 10s] name...
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
	"time"
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
	"TimerArmCancel":      benchTimerArmCancel,
}

func main() {
	// testing.Init registers -test.benchtime, which testing.Benchmark reads.
	testing.Init()
	benchtime := flag.String("benchtime", "0.5s", "run time per benchmark (e.g. 0.5s) or iteration count (e.g. 1000x)")
	tasks := flag.Int("tasks", 1000000, "goroutines parked by the memory benchmark")
	tickerTime := flag.Duration("tickertime", 10*time.Second, "how long TickerP50/TickerP99 read the ticker")
	list := flag.Bool("list", false, "list the benchmark names and exit")
	flag.Parse()

	if *list {
		names := []string{"memory", "Sleep100k", "Sleep100kMem", "TickerP50", "TickerP99", "CtxCancel100k"}
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
		switch name {
		case "memory":
			fmt.Printf("memory %.1f\n", parkedBytesPerGoroutine(*tasks))
			continue
		case "Sleep100k", "Sleep100kMem":
			wall, mem := sleepMany(100000)
			if name == "Sleep100k" {
				fmt.Printf("%s %.2f\n", name, wall)
			} else {
				fmt.Printf("%s %.2f\n", name, mem)
			}
			continue
		case "CtxCancel100k":
			fmt.Printf("%s %.2f\n", name, cancelWake(100000))
			continue
		case "TickerP50", "TickerP99":
			p50, p99 := tickerLateness(*tickerTime)
			if name == "TickerP50" {
				fmt.Printf("%s %.2f\n", name, p50)
			} else {
				fmt.Printf("%s %.2f\n", name, p99)
			}
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
