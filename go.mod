module github.com/httpimp/microcache

go 1.25.0

require (
	github.com/golang/snappy v1.0.0
	github.com/hashicorp/golang-lru/v2 v2.0.7
	github.com/klauspost/compress v1.20.3
	go.uber.org/goleak v1.3.0
)

require github.com/hashicorp/golang-lru/arc/v2 v2.0.7
