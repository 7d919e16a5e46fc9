module github.com/httpimp/microcache/acceptlang

go 1.25.0

require (
	github.com/httpimp/microcache v0.0.0
	golang.org/x/text v0.41.0
)

require (
	github.com/golang/snappy v1.0.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
)

replace github.com/httpimp/microcache => ../
