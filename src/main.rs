use std::process::ExitCode;

fn main() -> ExitCode {
    let arguments = <fleetform::cli::Cli as clap::Parser>::parse();
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
