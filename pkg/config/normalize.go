package config

// Normalize fills the defaults of a configuration built in code (tests,
// the demo) and checks its scalar settings; it returns a copy.
func Normalize(c *Config) (*Config, error) {
	cp := *c
	if err := cp.fill(); err != nil {
		return nil, err
	}
	var p problems
	cp.Authorities = append([]Authority(nil), cp.Authorities...)
	for i := range cp.Authorities {
		cp.Authorities[i].Rules = append([]Rule(nil), cp.Authorities[i].Rules...)
	}
	checkRules(&cp, &p)
	if len(p) > 0 {
		return nil, &Error{Problems: p}
	}
	return &cp, nil
}
