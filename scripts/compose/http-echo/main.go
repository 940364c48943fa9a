// A stand-in for hashicorp/http-echo (built here, since public image registries cannot be reached): the
// same flags the compose file passes, -listen and -text, answering every request with the text.
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	listen := flag.String("listen", ":5678", "address to listen on")
	text := flag.String("text", "", "text to answer with")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(*text + "\n"))
	})
	log.Fatal(http.ListenAndServe(*listen, nil))
}
