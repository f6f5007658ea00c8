package main

// Shapes of the runtime package's channel benchmarks (runtime/chan_test.go
// and proc_test.go in Go 1.19), restated so that they run from a main
// package. The structure, constants and unit of each one follow the
// original, because weft's numbers are compared against them.

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// callsPerSched is the batch size the originals hand out through an atomic
// counter.
const callsPerSched = 1000

// benchPingPong: one op is a round trip over two unbuffered channels.
func benchPingPong(b *testing.B) {
	ping := make(chan int)
	pong := make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	for i := 0; i < b.N; i++ {
		ping <- i
		<-pong
	}
	close(ping)
}

// benchChanSync: two goroutines take batches of 1000 hand-offs on one
// unbuffered channel; even batches receive first, odd ones send first.
func benchChanSync(b *testing.B) {
	const procs = 2
	batches := int32(b.N / callsPerSched / procs * procs)
	finished := make(chan bool, procs)
	myc := make(chan int)
	for p := 0; p < procs; p++ {
		go func() {
			for {
				i := atomic.AddInt32(&batches, -1)
				if i < 0 {
					break
				}
				for g := 0; g < callsPerSched; g++ {
					if i%2 == 0 {
						<-myc
						myc <- 0
					} else {
						myc <- 0
						<-myc
					}
				}
			}
			finished <- true
		}()
	}
	for p := 0; p < procs; p++ {
		<-finished
	}
}

// prodCons: GOMAXPROCS producers and as many consumers share one channel of
// the given capacity; a 0 value tells a consumer to stop.
func prodCons(b *testing.B, capacity int) {
	procs := runtime.GOMAXPROCS(-1)
	batches := int32(b.N / callsPerSched)
	finished := make(chan bool, 2*procs)
	myc := make(chan int, capacity)
	for p := 0; p < procs; p++ {
		go func() {
			for atomic.AddInt32(&batches, -1) >= 0 {
				for g := 0; g < callsPerSched; g++ {
					myc <- 1
				}
			}
			myc <- 0
			finished <- true
		}()
		go func() {
			for <-myc != 0 {
			}
			finished <- true
		}()
	}
	for p := 0; p < procs; p++ {
		<-finished
		<-finished
	}
}

func benchChanProdCons0(b *testing.B)   { prodCons(b, 0) }
func benchChanProdCons100(b *testing.B) { prodCons(b, 100) }

// benchChanUncontended: each parallel goroutine fills and drains its own
// channel of 100; one op is 100 sends plus 100 receives.
func benchChanUncontended(b *testing.B) {
	const C = 100
	b.RunParallel(func(pb *testing.PB) {
		myc := make(chan int, C)
		for pb.Next() {
			for i := 0; i < C; i++ {
				myc <- 0
			}
			for i := 0; i < C; i++ {
				<-myc
			}
		}
	})
}

// benchChanContended: as above, but all goroutines share one channel sized
// 100 per P.
func benchChanContended(b *testing.B) {
	const C = 100
	myc := make(chan int, C*runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for i := 0; i < C; i++ {
				myc <- 0
			}
			for i := 0; i < C; i++ {
				<-myc
			}
		}
	})
}

// benchSelectUncontended: each parallel goroutine bounces one token between
// two private buffered channels through a two-way select.
func benchSelectUncontended(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		myc1 := make(chan int, 1)
		myc2 := make(chan int, 1)
		myc1 <- 0
		for pb.Next() {
			select {
			case <-myc1:
				myc2 <- 0
			case <-myc2:
				myc1 <- 0
			}
		}
	})
}

// benchSelectSyncContended: every parallel goroutine starts a sender that
// offers on three shared unbuffered channels at once, then receives with a
// three-way select; closing done retires the senders.
func benchSelectSyncContended(b *testing.B) {
	myc1 := make(chan int)
	myc2 := make(chan int)
	myc3 := make(chan int)
	done := make(chan int)
	b.RunParallel(func(pb *testing.PB) {
		go func() {
			for {
				select {
				case myc1 <- 0:
				case myc2 <- 0:
				case myc3 <- 0:
				case <-done:
					return
				}
			}
		}()
		for pb.Next() {
			select {
			case <-myc1:
			case <-myc2:
			case <-myc3:
			}
		}
	})
	close(done)
}

// benchChanSem: a channel of empty structs with GOMAXPROCS slots used as a
// counting semaphore; one op is an acquire and a release.
func benchChanSem(b *testing.B) {
	type empty struct{}
	myc := make(chan empty, runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			myc <- empty{}
			<-myc
		}
	})
}

// benchCreateGoroutines: a chain of b.N goroutines, each starting the next
// and exiting; the last one reports on c.
func benchCreateGoroutines(b *testing.B) {
	c := make(chan bool)
	var f func(n int)
	f = func(n int) {
		if n == 0 {
			c <- true
			return
		}
		go f(n - 1)
	}
	go f(b.N)
	<-c
}
