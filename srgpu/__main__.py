from srgpu.cli import main

main()
