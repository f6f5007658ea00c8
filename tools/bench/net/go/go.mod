module weft/tools/bench/net/go

go 1.19
