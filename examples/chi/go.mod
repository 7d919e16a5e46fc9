module github.com/httpimp/microcache/examples/chi

go 1.25.0

require (
	github.com/go-chi/chi/v5 v5.5.0
	github.com/httpimp/microcache v0.0.0
)

require (
	github.com/golang/snappy v1.0.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
)

replace github.com/httpimp/microcache => ../..
