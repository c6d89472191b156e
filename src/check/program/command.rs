//! How a program's command line is handed to `sh`: a simple command is `exec`ed, so the program
//! itself leads its process group and its exit status and signal are its own. Text only.

/// `exec COMMAND` when `command` is one simple command (no lists, pipes, groups, assignments or
/// keywords); otherwise `command` as it is. Conservative: any doubt leaves `sh` in front.
pub(super) fn exec_if_simple(command: &str) -> String {
    let first = command.split_whitespace().next().unwrap_or_default();
    let compound = command.contains([';', '&', '|', '(', ')', '{', '}', '`', '\n'])
        || first.contains('=')
        || ["if", "for", "while", "until", "case", "!", "exec", "[[", "time"].contains(&first);
    if compound || first.is_empty() {
        command.to_owned()
    } else {
        format!("exec {command}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_simple_command_is_execed() {
        assert_eq!(exec_if_simple("python3 'my server.py' 12000"), "exec python3 'my server.py' 12000");
        assert_eq!(exec_if_simple("java -cp . Server > log"), "exec java -cp . Server > log");
        for compound in
            ["cd x && ./server", "a; b", "a | b", "PORT=1 ./server", "exec ./s", "(./s)", "", "if x"]
        {
            assert_eq!(exec_if_simple(compound), compound);
        }
    }
}
