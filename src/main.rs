use clap::Parser;

fn main() {
    let cli = photoboothd::cli::Cli::parse();
    std::process::exit(photoboothd::cli::main(cli));
}
