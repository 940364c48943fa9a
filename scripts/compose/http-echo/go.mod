module graywall/http-echo

go 1.19
