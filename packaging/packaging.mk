# packaging/packaging.mk — `make deb`, `make rpm` (packages left in
# build/packages/) and `make check-packages`, the packaging tests: build,
# lint, install into a fresh Debian 12 root and exercise it.  Not part of
# `make check` (it needs the apt mirror and takes a few minutes); .ci/run
# runs it after `make check`.
PKG_OUT := $(BUILD)/packages

deb:
	packaging/build-deb.sh $(abspath $(PKG_OUT))

rpm:
	packaging/build-rpm.sh $(abspath $(PKG_OUT))

# installs its own tools (as root) so that plain `make check` stays lean
check-packages: all
	tests/packaging/install-deps.sh
	$(Q)BUILD=$(abspath $(BUILD)) TOP=$(CURDIR) tests/packaging/run.sh

.PHONY: deb rpm check-packages
