package state

// LoadBalancerRecord locates one object of a load_balancer block: the primary's Service, whose annotations
// meshd added (lb_service), or a TargetGroupBinding meshd made in a secondary (target_group_binding). It is
// how a block removed from the spec, or a destroy, still finds them.
type LoadBalancerRecord struct {
	Cluster     string `json:"cluster"`
	KubeContext string `json:"kube_context"`
	Kind        string `json:"kind"` // Service | TargetGroupBinding
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	// On the Service: which of meshd's annotation values meshd added (rather than found there): only those
	// are removed when the block goes.
	AddedMultiCluster       bool `json:"added_multi_cluster,omitempty"`
	AddedDeletionProtection bool `json:"added_deletion_protection,omitempty"`
}

// SetLoadBalancer records the object at address.
func (s *State) SetLoadBalancer(address string, r LoadBalancerRecord) {
	setIn(&s.LoadBalancers, address, r)
}

// RemoveLoadBalancer forgets the object at address.
func (s *State) RemoveLoadBalancer(address string) { removeFrom(&s.LoadBalancers, address) }
