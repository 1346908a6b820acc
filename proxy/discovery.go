package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"time"
)

// resolveFunc looks up the addresses of a host name (Options.resolve
// replaces the system's resolver in tests).
type resolveFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func systemResolve(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// resolveTimeout bounds one round of lookups.
const resolveTimeout = 5 * time.Second

var errNoAddresses = errors.New("the name has no A or AAAA record")

// discover resolves the upstream's names every dnsRefresh until it closes.
func (u *upstream) discover() {
	t := time.NewTicker(u.cfg.DNSRefresh)
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			return
		case <-u.opts.done:
			return
		case <-t.C:
			u.resolve()
		}
	}
}

// resolve looks up every target's name and makes each address a target.
// A name whose lookup fails, or finds nothing, keeps the addresses it had:
// a resolver's hiccup must not empty an upstream that serves.
func (u *upstream) resolve() {
	lookup := u.opts.resolve
	if lookup == nil {
		lookup = systemResolve
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	cur := u.set.Load()
	var eps []endpoint
	var failed error
	for i, ct := range u.cfg.Targets {
		host, port, _ := net.SplitHostPort(ct.Host)
		addrs, err := lookup(ctx, host)
		if err == nil && len(addrs) == 0 {
			err = errNoAddresses
		}
		if err != nil {
			failed = err
			u.m.dnsFailures.Inc()
			if cur != nil {
				for _, t := range cur.targets {
					if t.parent == i {
						eps = append(eps, endpoint{parent: i, addr: t.pool.addr})
					}
				}
			}
			continue
		}
		for j, a := range addrs {
			addrs[j] = a.Unmap()
		}
		slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
		for _, a := range slices.Compact(addrs) {
			eps = append(eps, endpoint{parent: i, addr: net.JoinHostPort(a.String(), port)})
		}
	}
	u.mu.Lock()
	was := u.dnsErr
	u.dnsErr = ""
	if failed != nil {
		u.dnsErr = failed.Error()
	}
	u.mu.Unlock()
	switch {
	case failed != nil && was != failed.Error():
		u.log.Warn("upstream DNS lookup failed; its targets stay as they were", "upstream", u.name, "error", failed.Error())
	case failed == nil && was != "":
		u.log.Info("upstream DNS lookup works again", "upstream", u.name)
	}
	_ = u.update(eps)
}
