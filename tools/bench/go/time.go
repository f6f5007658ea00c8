package main

import (
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"
)

// benchTimerArmCancel creates a timer far in the future and stops it.
func benchTimerArmCancel(b *testing.B) {
	for i := 0; i < b.N; i++ {
		t := time.NewTimer(time.Hour)
		t.Stop()
	}
}

// sleepMany runs n goroutines that each sleep 1 ms and waits for all of
// them; it returns the wall time in milliseconds and the resident-set
// growth per goroutine.
func sleepMany(n int) (float64, float64) {
	runtime.GC()
	before := residentBytes()
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			time.Sleep(time.Millisecond)
			wg.Done()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	after := residentBytes()
	return float64(took.Nanoseconds()) / 1e6, float64(after-before) / float64(n)
}

// tickerLateness reads a 1 ms ticker for total and returns the median and
// 99th percentile, in microseconds, of how late each receive comes after
// the tick's scheduled time (the value sent on the channel).
func tickerLateness(total time.Duration) (float64, float64) {
	late := make([]float64, 0, int(total/time.Millisecond)+16)
	tk := time.NewTicker(time.Millisecond)
	defer tk.Stop()
	end := time.Now().Add(total)
	for time.Now().Before(end) {
		v := <-tk.C
		late = append(late, float64(time.Since(v).Nanoseconds())/1e3)
	}
	sort.Float64s(late)
	at := func(q float64) float64 { return late[int(q*float64(len(late)-1))] }
	return at(0.5), at(0.99)
}
