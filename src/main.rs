use std::process::ExitCode;

fn main() -> ExitCode {
    // A usage error exits 1 like every other error: clap's 2 means
    // "changes pending" to `plan`, and a mistyped flag must fail CI.
    let arguments = match <fleetform::cli::Cli as clap::Parser>::try_parse() {
        Ok(arguments) => arguments,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 1 } else { 0 });
        }
    };
    fleetform::cli::init_logging(arguments.log_format);
    let mut output = fleetform::output::Output::stdio();
    match fleetform::cli::run(arguments, &mut output) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            output.error_chain(&error);
            ExitCode::from(1)
        }
    }
}
