# Shared by the scripts: install missing system programs with the machine's package manager.

# install_programs PACKAGE... : apt-get (as root, or through sudo) or brew; a clear message otherwise.
install_programs() {
    if command -v apt-get >/dev/null 2>&1; then
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        echo "setup: installing $* with apt-get" >&2
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
    elif command -v brew >/dev/null 2>&1; then
        brew install "$@"
    else
        echo "setup: missing $*: install them with your package manager, then run this again." >&2
        exit 1
    fi
}
