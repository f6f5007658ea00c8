module weft/tools/bench/go

go 1.19
