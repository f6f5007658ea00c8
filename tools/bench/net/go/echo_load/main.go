// Load generator for echo servers: `conns` connections, each sending a
// message of `size` bytes and reading the echo back, again and again, for
// `duration`. Prints the round trips per second.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "server address")
	conns := flag.Int("conns", 100, "connections")
	size := flag.Int("size", 64, "message bytes")
	duration := flag.Duration("duration", 3*time.Second, "measured time")
	flag.Parse()

	var total int64
	var stop atomic.Bool
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < *conns; i++ {
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ready.Add(1)
		done.Add(1)
		go func(c net.Conn) {
			defer done.Done()
			defer c.Close()
			msg := make([]byte, *size)
			back := make([]byte, *size)
			ready.Done()
			<-start
			n := int64(0)
			for !stop.Load() {
				if _, err := c.Write(msg); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				if _, err := io.ReadFull(c, back); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				n++
			}
			atomic.AddInt64(&total, n)
		}(c)
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	time.Sleep(*duration)
	stop.Store(true)
	done.Wait()
	elapsed := time.Since(t0).Seconds()
	fmt.Printf("%.0f\n", float64(total)/elapsed)
}
