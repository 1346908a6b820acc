package chain

import (
	"errors"

	"github.com/flexgate/flexgate/config"
)

// Set is the compiled chains of one config, one per route, in the config's
// route order. It is immutable and safe for concurrent use.
type Set struct {
	Chains []*Chain
}

// CompileAll compiles the chains of every route of cfg, carrying over from
// old (which may be nil) every instance whose route, name and parameters are
// unchanged. On error nothing of old is touched and everything newly
// provisioned is closed again; all errors of all routes are returned.
func CompileAll(cfg *config.Config, old *Set, opts Options) (*Set, error) {
	owned := map[Policy]bool{}
	opts.Reuse = map[string]Instance{}
	opts.shared = map[string]Instance{}
	if old != nil {
		for _, c := range old.Chains {
			for _, inst := range c.Policies {
				opts.Reuse[inst.Key] = inst
				owned[inst.Policy] = true
			}
		}
	}
	s := &Set{Chains: make([]*Chain, len(cfg.Routes))}
	var errs []error
	for i := range cfg.Routes {
		c, err := Compile(cfg, &cfg.Routes[i], opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.Chains[i] = c
	}
	if len(errs) > 0 {
		for _, c := range s.Chains {
			if c == nil || !opts.Provision {
				// Close releases what Provision built: nothing here.
				continue
			}
			for _, inst := range c.Policies {
				// A policy shared by the routes of a scope is closed
				// once.
				if !owned[inst.Policy] {
					owned[inst.Policy] = true
					_ = inst.Policy.Close()
				}
			}
		}
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// Retire closes the instances of s that next did not carry over. Call it
// once no request can still be running on s. next may be nil (shutdown).
func (s *Set) Retire(next *Set) error {
	if s == nil {
		return nil
	}
	kept := map[Policy]bool{}
	if next != nil {
		for _, c := range next.Chains {
			for _, inst := range c.Policies {
				kept[inst.Policy] = true
			}
		}
	}
	var errs []error
	for _, c := range s.Chains {
		for _, inst := range c.Policies {
			if !kept[inst.Policy] {
				// A policy shared by the routes of a scope is closed
				// once.
				kept[inst.Policy] = true
				if err := inst.Policy.Close(); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
