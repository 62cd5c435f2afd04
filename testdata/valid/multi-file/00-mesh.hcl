# A spec split over several files: the mesh block in one, the clusters in the others. Files are read in name
# order, which is the clusters' order.
mesh "tidb" {
  quotas {
    routes_per_route_table = 100
  }
}
