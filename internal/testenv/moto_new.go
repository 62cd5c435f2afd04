package testenv

// NewMoto wraps a moto process started with RunMoto, for a server shared by the tests of a package (started
// once in TestMain or a sync.Once, and stopped there).
func NewMoto(p *Process, endpoint string) *Moto { return &Moto{Process: p, endpoint: endpoint} }
