"""The fictional demo region 示例市（虚构）; regenerate with ``python -m geodata.demo.generate``."""
