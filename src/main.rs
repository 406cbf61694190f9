fn main() -> std::process::ExitCode {
    kswizard::cli::main()
}
