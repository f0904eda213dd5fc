# Thin wrappers over ./dev, which does the set-up (a fresh Debian 12 has no `make`, so the
# README's two commands call ./dev directly).
.PHONY: run test bench lint package screenshots
run:
	./dev run
test:
	./dev test
bench:
	./dev bench
lint:
	./dev lint
package:
	./dev package
screenshots:
	./dev screenshots
