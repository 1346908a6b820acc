package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flexgate/flexgate/proxy/proxytest"
)

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// peakHeap samples the heap in use until stop closes and returns the peak.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// TestLargeBodiesStreamWithFlatMemory sends a large upload and a large
// download through the gateway (client, gateway and upstream all live in
// this process) and checks that the heap stays far below the body size.
func TestLargeBodiesStreamWithFlatMemory(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 128 << 20
	}
	up := proxytest.StartUpstream(t)
	up.Handler = func(ctx *fasthttp.RequestCtx) {
		if ctx.IsPost() {
			n, err := io.Copy(io.Discard, ctx.RequestBodyStream())
			if err != nil {
				ctx.Error(err.Error(), 500)
				return
			}
			ctx.SetBodyString(strconv.FormatInt(n, 10))
			return
		}
		ctx.SetBodyStream(io.LimitReader(zeros{}, size), int(size))
	}
	gw := proxytest.Start(t, fmt.Sprintf(preamble+`  routes:
    - id: files
      path: ["/files/*"]
      maxRequestBodySize: 2GiB
      upstream: {url: "%s", responseTimeout: 60s}
`, up.URL))

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	stop := make(chan struct{})
	peak := peakHeap(stop)

	client := &http.Client{Timeout: 120 * time.Second}
	var sent atomic.Int64
	body := io.TeeReader(io.LimitReader(zeros{}, size), writerFunc(func(p []byte) { sent.Add(int64(len(p))) }))
	req, _ := http.NewRequest("POST", gw.URL+"/files/upload", body)
	req.ContentLength = size
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != strconv.FormatInt(size, 10) {
		t.Fatalf("upload: status %d, upstream counted %s bytes, want %d", resp.StatusCode, got, size)
	}

	resp, err = client.Get(gw.URL + "/files/download")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("download: %d bytes, %v; want %d", n, err, size)
	}
	close(stop)
	grown := int64(<-peak) - int64(base)
	t.Logf("%d MiB each way; heap grew by at most %d KiB", size>>20, grown>>10)
	if grown > 64<<20 {
		t.Fatalf("heap grew by %d MiB while streaming %d MiB: bodies are being buffered", grown>>20, size>>20)
	}
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }
