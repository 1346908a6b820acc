// Package redisopt turns spec.sharedStorage.redis into the options of a
// rueidis client, the same for every feature that shares the store.
package redisopt

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"time"

	"github.com/redis/rueidis"

	"github.com/flexgate/flexgate/config"
)

// DialTimeout bounds connecting to one Redis node.
const DialTimeout = 2 * time.Second

// Dialer dials Redis nodes: a bounded connect, and keepalives that notice a
// vanished node within seconds.
func Dialer() net.Dialer {
	return net.Dialer{Timeout: DialTimeout, KeepAlive: time.Second}
}

// Options are the client options for r: its addresses, credentials,
// database, mode (standalone, sentinel, cluster) and TLS. Client-side
// caching is off (every answer is the server's), and a connection whose
// writes go unanswered for 5 s is given up, whatever the callers'
// deadlines: a paused or hung Redis must not hold connections for the
// kernel's keepalive (minutes). Commands are always pipelined: rueidis
// runs a lone command on the connection synchronously, holds the commands
// that come meanwhile until it is answered, and closes the connection
// when its deadline passes: behind a Redis slower than half a caller's
// deadline the calls held back would miss theirs, and each miss would cost
// a reconnection.
// Callers add what is theirs.
func Options(r *config.Redis) (rueidis.ClientOption, error) {
	opt := rueidis.ClientOption{
		InitAddress:      r.Addresses(),
		Username:         r.Username,
		Password:         r.Password,
		SelectDB:         r.DB,
		ClientName:       "flexgate",
		DisableCache:     true,
		Dialer:           Dialer(),
		ConnWriteTimeout: 5 * time.Second,
		AlwaysPipelining: true,
	}
	switch r.Mode() {
	case "standalone":
		opt.ForceSingleClient = true
	case "sentinel":
		opt.Sentinel = rueidis.SentinelOption{MasterSet: r.Sentinel.MasterName, Password: r.Sentinel.Password,
			Dialer: Dialer(), ClientName: "flexgate", TopologyRefreshInterval: 5 * time.Second}
	case "cluster":
		opt.ShuffleInit = true
	}
	if r.TLS != nil {
		tc, err := r.TLS.Config()
		if err != nil {
			return opt, fmt.Errorf("sharedStorage redis tls: %w", err)
		}
		opt.TLSConfig = tc
		opt.Sentinel.TLSConfig = tc
	}
	return opt, nil
}

// SettingsKey is a digest of everything that makes a connection to r, the
// password included (it never leaves the digest): features keep one
// connection per gateway and key, and a reload that changes none of these
// settings keeps it.
func SettingsKey(r *config.Redis) string {
	h := sha256.New()
	// The pointers' targets are written, not their addresses: a reload
	// parses equal settings into new values.
	flat := *r
	flat.Sentinel, flat.Cluster, flat.TLS = nil, nil, nil
	fmt.Fprintf(h, "%#v\x00", flat)
	if r.Sentinel != nil {
		fmt.Fprintf(h, "sentinel %#v\x00", *r.Sentinel)
	}
	if r.Cluster != nil {
		fmt.Fprintf(h, "cluster %#v\x00", *r.Cluster)
	}
	if r.TLS != nil {
		fmt.Fprintf(h, "tls %#v\x00", *r.TLS)
	}
	return hex.EncodeToString(h.Sum(nil))
}
