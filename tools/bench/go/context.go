package main

import (
	"context"
	"sync"
	"time"
)

// cancelWake parks n goroutines in a select on one context's Done channel,
// cancels the context and returns the nanoseconds per waiter from the
// cancel until every goroutine has run.
func cancelWake(n int) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	var parked, woken sync.WaitGroup
	parked.Add(n)
	woken.Add(n)
	never := make(chan int)
	for i := 0; i < n; i++ {
		go func() {
			parked.Done()
			select {
			case <-ctx.Done():
			case <-never:
			}
			woken.Done()
		}()
	}
	parked.Wait()
	// Let the last goroutines reach the select.
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	cancel()
	woken.Wait()
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}
