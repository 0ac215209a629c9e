package config

// Normalize fills the defaults of a configuration built in code (tests,
// the demo) and checks its scalar settings; it returns a copy.
func Normalize(c *Config) (*Config, error) {
	cp := *c
	if err := cp.fill(); err != nil {
		return nil, err
	}
	return &cp, nil
}
