package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// residentBytes reads the resident set size from /proc/self/statm.
func residentBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		panic(err)
	}
	fields := strings.Fields(string(data))
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		panic(err)
	}
	return pages * int64(os.Getpagesize())
}

// parkedBytesPerGoroutine parks n goroutines on a receive from one channel
// and returns the growth of the resident set divided by n.
func parkedBytesPerGoroutine(n int) float64 {
	ch := make(chan int)
	var parked, exited sync.WaitGroup
	runtime.GC()
	before := residentBytes()
	parked.Add(n)
	exited.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			parked.Done()
			<-ch
			exited.Done()
		}()
	}
	parked.Wait()
	// Let the last goroutines reach the receive before measuring.
	time.Sleep(20 * time.Millisecond)
	after := residentBytes()
	close(ch)
	exited.Wait()
	return float64(after-before) / float64(n)
}
